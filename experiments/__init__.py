"""The r_t study runner: many prompt pairs × seeds × settings on one or many ComfyUI servers (python -m experiments).

Stdlib and the pack's pure ``attention`` rendering only; ComfyUI's own HTTP queue does the work.
"""

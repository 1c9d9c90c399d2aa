"""The r_t study runner: many prompt pairs × seeds × settings on one or many ComfyUI servers (python scripts/study.py).

Stdlib and the pack's pure ``attention`` rendering only; ComfyUI's own HTTP queue does the work.
"""

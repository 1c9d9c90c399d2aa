"""Attention capture and r_t analysis (pure torch): see the attention-capture issue."""

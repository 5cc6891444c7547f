"""Input preprocessing shared by training and the runtime (torch-free)."""

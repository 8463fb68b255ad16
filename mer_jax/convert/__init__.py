"""PyTorch -> Flax weight conversion: read `.pth` files without torch and fill NNX models from them.

- `torch_checkpoint`: `load_state_dict(path)` reads a PyTorch state_dict (legacy and zip formats)
  into NumPy arrays with a restricted unpickler; `write_state_dict` writes files in both formats.
- `torch_weights`: `import_state_dict(model_name, model, state_dict)` copies a state_dict into one
  of our models (layout changes, flatten permutation, key and shape checks).
- `raft_weights`: `load_torchvision_raft(model, state_dict)` fills our RAFT (features/raft.py) from
  torchvision's raft_large / raft_small state_dicts.
- `depth_anything_weights`: `load_transformers_depth_anything(model, state_dict)` fills our Depth Anything
  (features/depth.py) from a transformers DepthAnythingForDepthEstimation state_dict (the model.safetensors
  of depth-anything/Depth-Anything-V2-Small-hf, read by `read_safetensors`).
"""

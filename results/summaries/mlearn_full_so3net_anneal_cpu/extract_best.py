"""Write the best-validation weights of an interrupted run's checkpoint as a model file (one-off: the run was
stopped by SIGTERM at step 812, after its validation energy had stayed flat for 800 steps).
Usage: extract_best.py START_MODEL CHECKPOINT OUT  (START_MODEL: the model the run started from: same
architecture, stress output and energy offset)."""
import sys, torch
from mlp_transfer import models
start, checkpoint, out = sys.argv[1:]
model = models.load_model(start)
state = torch.load(checkpoint, map_location="cpu", weights_only=False)
model.load_state_dict(state["best_state"])
print("best step", state["best_step"], "best val loss", state["best_val"])
models.save_model(model, out)

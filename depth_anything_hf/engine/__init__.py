"""What the three training scripts share: arguments, Accelerate set-up, optimiser groups, DINOv2 encoder
initialisation, resumable data streams, the student's losses, logging and export.

Import the submodules directly (`from depth_anything_hf.engine.encoder_init import ...`): this file imports
nothing, so that `depth_anything_hf.engine.pseudo_labeling` can be imported without the rest of the engine.
"""

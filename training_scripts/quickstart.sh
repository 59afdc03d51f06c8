#!/usr/bin/env bash
# The whole Depth Anything training method at toy scale, on the sample data in training_scripts/sample_data/:
#   1. teacher on 48 labeled RGB-D frames        (train_teacher.py)
#   2. pseudo-labels for 32 unlabeled photos     (pseudo_label.py, the data engine)
#   3. student on labeled + pseudo-labeled images (train_student.py)
#   4. the student's depth map of a photo it never saw, as a PNG (depth-anything predict)
# A few minutes on 2 CPU cores. Usage: bash training_scripts/quickstart.sh [OUTPUT_DIR]   (default runs/quickstart)
#
# Toy settings, and why: a small model (sample_data/toy_config.json, 140 px) so that it runs on a laptop;
# `--encoder_init none` (random init) and learning rates far above the paper's 5e-6, because there is no
# DINOv2 to start from without a download; `--no_feature_alignment`, since feature alignment needs a
# pretrained DINOv2 to align to. The real commands are in the README ("Training").
set -euo pipefail
cd "$(dirname "$0")/.."

OUTPUT_DIR=${1:-runs/quickstart}
SAMPLE_DATA=training_scripts/sample_data
PYTHON=${PYTHON:-python}
TEACHER_STEPS=${TEACHER_STEPS:-200}
STUDENT_STEPS=${STUDENT_STEPS:-100}
# Nothing here needs the Hugging Face Hub; offline mode avoids waiting on a network that may not be there.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}

notice() {
  cat <<EOF
================================================================================================
  TOY RUN: a small model trained from RANDOM initialisation on a few dozen images, for a few
  minutes on the CPU. The depth map it writes shows that the pipeline works end to end
  (teacher -> pseudo-labels -> student -> depth map); it says nothing about the method's quality.
================================================================================================
EOF
}

notice
echo "[1/4] Teacher on the labeled RGB-D frames of $SAMPLE_DATA/rgbd ($TEACHER_STEPS steps)"
"$PYTHON" training_scripts/train_teacher.py \
  --dataset "$SAMPLE_DATA/rgbd" \
  --model_config "$SAMPLE_DATA/toy_config.json" --encoder_init none --resolution 140 \
  --train_batch_size 4 --max_train_steps "$TEACHER_STEPS" --encoder_learning_rate 1e-4 \
  --report_to none --seed 0 --output_dir "$OUTPUT_DIR/teacher"

echo "[2/4] Pseudo-labels: the teacher's disparity for the unlabeled photos of $SAMPLE_DATA/photos"
"$PYTHON" training_scripts/pseudo_label.py \
  --teacher "$OUTPUT_DIR/teacher" --unlabeled_dataset "$SAMPLE_DATA/photos" \
  --batch_size 8 --seed 0 --output_dir "$OUTPUT_DIR/pseudo_labels"

echo "[3/4] Student on labeled frames and pseudo-labeled photos, 1:2 per batch ($STUDENT_STEPS steps)"
"$PYTHON" training_scripts/train_student.py \
  --dataset "$SAMPLE_DATA/rgbd" --pseudo_labels "$OUTPUT_DIR/pseudo_labels" \
  --model_config "$SAMPLE_DATA/toy_config.json" --encoder_init none --no_feature_alignment --resolution 140 \
  --train_batch_size 6 --max_train_steps "$STUDENT_STEPS" --encoder_learning_rate 1e-4 \
  --report_to none --seed 0 --output_dir "$OUTPUT_DIR/student"

echo "[4/4] The student's depth map of a held-out photo"
"$PYTHON" -m depth_anything_hf.cli predict "$OUTPUT_DIR/student" "$SAMPLE_DATA/holdout/P1070502.jpg" \
  --outputs colormap --output_dir "$OUTPUT_DIR"

notice
echo "Depth map (disparity, red = near, blue = far): $OUTPUT_DIR/P1070502_disparity.png"
echo "Models: $OUTPUT_DIR/teacher, $OUTPUT_DIR/student; pseudo-labeled dataset: $OUTPUT_DIR/pseudo_labels"

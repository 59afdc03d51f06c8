from setuptools import find_packages, setup

setup(
    name="depth_anything_hf",
    version="0.1.0",
    description="Transformers-native Depth Anything (V1/V2) with the full two-stage semi-supervised training system",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["depth_anything_hf", "depth_anything_hf.*"]),
    package_data={"depth_anything_hf": ["hub/model_card_template.md", "evaluation/depth_metrics/*"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.6",
        "transformers>=5,<6",
        "accelerate>=1.0",
        "datasets>=4.0",
        "safetensors>=0.4",
        "evaluate>=0.4",
        "huggingface-hub>=1.0",
        "pillow>=10",
        "numpy>=1.26",
        "kornia>=0.7",
        "pyarrow>=15",
        "tqdm>=4.60",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "scikit-image>=0.22",
            "tensorboard>=2.14",
            "mvtb-data>=1.0",
            "opencv-python-headless>=4.8",
            "h5py>=3.8",
            "matplotlib>=3.7",
            "av>=12",
            "onnx>=1.16",
            "onnxscript>=0.3",
            "onnxruntime>=1.18",
            "gradio>=5",
            "playwright>=1.40",
        ],
        "tensorboard": ["tensorboard>=2.14"],
        # `depth-anything predict`: Spectral_r colour maps, video files.
        "predict": ["matplotlib>=3.7", "av>=12"],
        # `depth-anything export`: torch's ONNX exporter needs onnxscript; onnxruntime checks and quantises.
        "onnx": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
        # app.py, the demo page.
        "demo": ["gradio>=5", "matplotlib>=3.7"],
    },
    entry_points={"console_scripts": ["depth-anything=depth_anything_hf.cli:main"]},
)

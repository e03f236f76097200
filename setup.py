"""Install tinycnn: ``pip install -e .`` (add ``[test]`` for the test tools)."""
import re
from pathlib import Path

from setuptools import find_namespace_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "tinycnn" / "__init__.py").read_text()).group(1)

setup(
    name="tinycnn",
    version=version,
    description="A from-scratch, educational convolutional neural network framework (NumPy + Numba).",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # namespace discovery also lists tinycnn/datasets/data, the folder of shipped .npz files
    packages=find_namespace_packages(include=["tinycnn", "tinycnn.*"]),
    package_data={"tinycnn.datasets.data": ["*.npz", "samples/*.png"],
                  "tinycnn.explain": ["page.html", "page.css", "page.js"]},
    include_package_data=True,
    # Pillow reads and resizes images for predict (it also comes with matplotlib)
    install_requires=["numpy>=1.23", "numba>=0.58", "matplotlib>=3.5", "tqdm>=4.60",
                      "threadpoolctl>=3.1", "Pillow>=8"],
    extras_require={
        # scikit-learn: an independent oracle for the metrics tests, never imported by tinycnn
        "test": ["pytest>=7", "hypothesis>=6.70", "scikit-learn>=1.2"],
        "notebooks": ["jupytext>=1.14", "nbclient>=0.7", "ipykernel>=6"],
        "interop": ["torch>=2.0", "onnx>=1.14", "onnxruntime>=1.16"],
        "browser": ["playwright>=1.40"],
    },
    entry_points={"console_scripts": ["tinycnn=tinycnn.cli:main"]},
)

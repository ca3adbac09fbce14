"""genart: train a VAE-GAN or CycleGAN on your own images and serve it like TF Serving."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(name):
    lines = (HERE / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="genart",
    version="0.1.0",
    description="Generative art on your own images: VAE-GAN / CycleGAN training, export and TF-Serving-style serving.",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["artifacts", "artifacts.*", "preprocess", "preprocess.*", "trainer", "trainer.*", "serving", "serving.*"]),
    package_data={
        "trainer.evaluate": ["weights/*.weights.h5"],  # the digits feature net's trained weights
        "serving.server": ["static/**/*"],  # the web studio: HTML, CSS and JavaScript modules served by serving.server
    },
    install_requires=_requirements("requirements.txt"),
    extras_require={"test": _requirements("requirements-test.txt")},
)

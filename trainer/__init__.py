"""Training of genart's generative models (VAE-GAN, CycleGAN), checkpoints, summaries and SavedModel export."""

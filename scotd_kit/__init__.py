"""scotd_kit: reproduce and reuse chain-of-thought distillation (SCoTD, Socratic CoT).

The package holds the logic; notebooks under ``notebooks/`` chain the calls:
task -> prompts -> teacher samples -> corpus -> filters -> fine-tune -> evaluate -> tables, figures.
"""
__version__ = "0.1.0"

"""The AI engine\x27s domain: generation jobs, their progress stream, drafts and repair."""

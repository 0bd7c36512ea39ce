"""One construct per part of the pipeline."""

"""The worker: a batch loop over the input topics, the processor it hands batches to."""

"""Kafka at the edge: client options, topics, the worker's consumer and producer, lag."""

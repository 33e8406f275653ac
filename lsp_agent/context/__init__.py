"""Context: token counting, ranking by the reference graph, the rolling snapshot."""

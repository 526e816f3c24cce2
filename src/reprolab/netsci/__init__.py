"""Network neuroscience: control theory of brain networks, network measures, multilayer modularity."""

print("decision-bench: not yet built")

"""Bundle specs of the model zoo, one module per model family (see make_fixtures.load_zoo_specs)."""

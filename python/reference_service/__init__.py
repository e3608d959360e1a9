"""Python reference /predict service (FastAPI + NeuralForecast), see docs/contract.md."""

"""A team's forecasting service, written the usual way: rows under "data",
futures under "future", statics under "static", the horizon as "horizon",
the team's own column names (series/timestamp/value) renamed before
nf.predict and back after; answers {"forecast": records} with dates as
YYYY-MM-DD. Health says "healthy".

    MODEL_DIR=tests/fixtures/bundles/mlp_exog python service.py PORT
"""

import os
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI
from neuralforecast import NeuralForecast

RENAME = {"series": "unique_id", "timestamp": "ds", "value": "y"}
BACK = {v: k for k, v in RENAME.items()}

nf = NeuralForecast.load(os.environ["MODEL_DIR"])
app = FastAPI()


def frame(rows):
    df = pd.DataFrame(rows).rename(columns=RENAME)
    if "ds" in df:
        df["ds"] = pd.to_datetime(df["ds"])
    return df


@app.get("/health")
def health():
    return {"status": "healthy"}


@app.post("/predict")
def predict(body: dict):
    fc = nf.predict(
        df=frame(body["data"]),
        futr_df=frame(body["future"]) if body.get("future") else None,
        static_df=frame(body["static"]) if body.get("static") else None,
        h=body.get("horizon"),
    )
    fc = fc.rename(columns=BACK)
    fc["timestamp"] = fc["timestamp"].dt.strftime("%Y-%m-%d")
    return {"forecast": fc.to_dict("records")}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

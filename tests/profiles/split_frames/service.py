"""A team's forecasting service, written the usual way: the client sends
`df.to_json(orient="split")` (time stamps as epoch milliseconds) under
"df" and "static_df", the answer is `{"model": ..., "forecast":
fc.to_json(orient="split", date_format="iso")}`.

    MODEL_DIR=tests/fixtures/bundles/nbeatsx_ms_stat_mq MODEL_NAME=... python service.py PORT
"""

import json
import os
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI
from neuralforecast import NeuralForecast

nf = NeuralForecast.load(os.environ["MODEL_DIR"])
MODEL_NAME = os.environ["MODEL_NAME"]
app = FastAPI()


def frame(split):
    df = pd.DataFrame(split["data"], columns=split["columns"])
    if "ds" in df:
        df["ds"] = pd.to_datetime(df["ds"], unit="ms")
    return df


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict")
def predict(body: dict):
    fc = nf.predict(
        df=frame(body["df"]),
        static_df=frame(body["static_df"]) if body.get("static_df") else None,
    )
    return {"model": MODEL_NAME, "forecast": json.loads(fc.to_json(orient="split", date_format="iso"))}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

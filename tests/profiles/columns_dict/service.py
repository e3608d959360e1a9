"""A team's forecasting service, written the usual way: frames as
`df.to_dict("list")` under "history", "future" and "static", the answer
`{"predictions": fc.to_dict("list")}` (FastAPI writes the time stamps as ISO
datetimes), the model as ?model=.

    MODEL_DIR=tests/fixtures/bundles/bitcn_d_exog python service.py PORT
"""

import os
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI
from neuralforecast import NeuralForecast

nf = NeuralForecast.load(os.environ["MODEL_DIR"])
app = FastAPI()


def frame(columns):
    df = pd.DataFrame(columns)
    if "ds" in df:
        df["ds"] = pd.to_datetime(df["ds"])
    return df


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict")
def predict(body: dict, model: str | None = None):
    fc = nf.predict(
        df=frame(body["history"]),
        futr_df=frame(body["future"]) if "future" in body else None,
        static_df=frame(body["static"]) if "static" in body else None,
    )
    return {"predictions": fc.to_dict("list")}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

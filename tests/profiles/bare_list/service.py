"""A team's forecasting service, written the usual way: the body is a bare
JSON list of rows, the answer is what `fc.to_json(orient="records")` writes
(pandas' default: `ds` as epoch milliseconds), the model named in a header.

    MODEL_DIR=tests/fixtures/bundles/nhits_h_max_linear python service.py PORT
"""

import os
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI, Request, Response
from neuralforecast import NeuralForecast

nf = NeuralForecast.load(os.environ["MODEL_DIR"])
app = FastAPI()


@app.get("/health")
def health():
    return {"healthy": True}


@app.post("/predict")
async def predict(request: Request):
    df = pd.DataFrame(await request.json())
    df["ds"] = pd.to_datetime(df["ds"])
    fc = nf.predict(df=df)
    return Response(fc.to_json(orient="records"), media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

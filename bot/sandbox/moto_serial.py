"""moto server answering one request at a time: ``python -m bot.sandbox.moto_serial -H HOST -p PORT``.

moto's own server (``python -m moto.server``) answers requests on parallel threads, and its
DynamoDB backend checks the conditions of two concurrent ``TransactWriteItems`` without isolating
them, so both can pass. DynamoDB itself runs conflicting transactions one after the other (the
loser fails with ``TransactionConflict`` or its condition). Answering one request at a time gives
the tests DynamoDB's isolation; everything else about moto is unchanged.
"""

from __future__ import annotations

import argparse
import os

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

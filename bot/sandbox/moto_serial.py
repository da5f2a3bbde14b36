"""moto server answering one request at a time: ``python -m bot.sandbox.moto_serial -H HOST -p PORT``.

moto's own server (``python -m moto.server``) answers requests on parallel threads, and its
DynamoDB backend checks the conditions of two concurrent ``TransactWriteItems`` without isolating
them, so both can pass. DynamoDB itself runs conflicting transactions one after the other (the
loser fails with ``TransactionConflict`` or its condition). Answering one request at a time gives
the tests DynamoDB's isolation. IAM is made a closer stand-in where the lifecycle needs it
(:mod:`bot.sandbox.moto_iam`: service-specific credentials, a strict ``DeleteUser``, console
sign-ins that set ``PasswordLastUsed``, time passing for a user); everything else about moto is unchanged.
"""

from __future__ import annotations

import argparse
import os

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from bot.sandbox import moto_iam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_iam.install()
    app = moto_iam.with_sandbox_routes(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

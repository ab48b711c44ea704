"""`lab`: a local web page to draw a digit, watch the network compute it, take a gradient step and train it."""
from __future__ import annotations

import argparse
import ipaddress
import socket

from tinygrad_edu.cli.common import check_outputs, fail
from tinygrad_edu.messages import DEFAULT_LANGUAGE, LANGUAGES, text

HELP = "open the lab: draw a digit, see forward and backward, take a step, watch training (a local web page)"
DESCRIPTION = """\
Start a local web server with the lab and open it in the browser. Draw a digit (or pick a test image) and see
the tutorial's 784-10-10 network compute it layer by layer; choose the true label to see dZ2, dW2, db2, dZ1 and
dW1 with the rules autograd applied; take one step W := W − α·dW; or watch the network train on MNIST. Every
number is computed in Python by tinygrad_edu; the page only draws. Ctrl-C stops the server.

Without --weights the network is first trained for about a second (He's init, minibatches).

examples:
  tinygrad-edu lab
  tinygrad-edu lab --weights weights.npz --save lab-weights.npz
  tinygrad-edu lab --host 0.0.0.0 --port 8080 --no-browser     # a classroom: reachable from other machines
  tinygrad-edu lab --lang vi                                    # the page in Vietnamese (it has a switch too)
"""

LOOPBACK = "127.0.0.1"


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def _host(text: str) -> str:
    """An address to listen on, refusing the spellings that silently mean every interface: "" and names such as
    "0" (which the system reads as 0.0.0.0). Every interface must be asked for as 0.0.0.0 or ::."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected an address to listen on, got {text!r}; every interface is "
                                         "--host 0.0.0.0 (or ::)")
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(text, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return text   # NOTE: a name that does not resolve: binding it says so, in the command's own error
    if any(ipaddress.ip_address(a.split("%")[0]).is_unspecified for a in resolved):
        raise argparse.ArgumentTypeError(f"{text!r} means {sorted(resolved)[0]}, every interface; if that is what "
                                         "you want, say --host 0.0.0.0 (or ::)")
    return text


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", metavar="WEIGHTS.npz",
                        help="start from a tutorial model saved by `train --save` (default: train one now, ~1 s)")
    parser.add_argument("--host", default=LOOPBACK, type=_host,
                        help="address to listen on (default: 127.0.0.1, this machine only; another address "
                             "exposes the lab to the network)")
    parser.add_argument("--port", type=_port, help="port (default: 8000, or the next free one)")
    parser.add_argument("--save", metavar="WEIGHTS.npz",
                        help="the file the page's Save button writes the current weights to (the only file the "
                             "lab ever writes)")
    parser.add_argument("--force", action="store_true", help="let --save overwrite an existing file")
    parser.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    parser.add_argument("--data", metavar="DIR", help="folder holding MNIST's four IDX files (default: "
                        "$TINYGRAD_EDU_DATA, then the copy bundled with tinygrad_edu, then the cache)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    parser.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                        help="the page's language at first (it has a switch) and this command's messages "
                             f"(default: {DEFAULT_LANGUAGE})")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    import threading
    import time
    import webbrowser

    from tinygrad_edu import checkpoint, datasets, training
    from tinygrad_edu.lab import server, session

    if problem := check_outputs([("--save", args.save)], args.force, [("--weights", args.weights)]):
        return fail("lab", problem)
    start = time.perf_counter()
    try:
        data = training.load_data("mnist", args.data, download=False, progress=False)
    except datasets.DatasetError as e:
        return fail("lab", e)
    if args.weights:
        try:
            net, _ = training.load_model(args.weights)
            session.check_network(net)
        except checkpoint.CheckpointError as e:
            return fail("lab", e)
        origin = {"kind": "file", "path": str(args.weights), "description": training.describe(net)}
        source = text("lab.origin_file", args.lang, path=origin["path"], description=origin["description"])
    else:
        result = session.train_startup(data)
        net = result.model
        origin = {"kind": "startup", "steps": result.iterations, "accuracy": f"{result.test_accuracy:.4f}"}
        source = text("lab.origin_startup", args.lang, **{k: v for k, v in origin.items() if k != "kind"})
    print(text("cli.lab_network", args.lang, source=source), flush=True)
    lab = session.Lab(net, data, save_path=args.save, source=source, origin=origin, language=args.lang)
    try:
        httpd = server.bind(lab, args.host, args.port, verbose=args.verbose)
    except OSError as e:
        return fail("lab", f"cannot listen on {args.host}:{args.port or 8000}: {e.strerror or e}")
    if not is_loopback(args.host):
        where = text("cli.lab_every_interface", args.lang, host=args.host) if is_unspecified(args.host) else args.host
        print(text("cli.lab_exposed", args.lang, host=where, port=httpd.server_address[1]), flush=True)
    try:   # NOTE: from here on, Ctrl-C stops the lab cleanly
        print(text("cli.lab_serving", args.lang, url=httpd.url, seconds=f"{time.perf_counter() - start:.1f}"),
              flush=True)
        if not args.no_browser:
            threading.Thread(target=webbrowser.open, args=(httpd.url,), daemon=True).start()
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("\n" + text("cli.lab_stopping", args.lang), flush=True)
    finally:
        lab.close()
        httpd.server_close()
    return 0

"""The shopper's pages: server-rendered, in every market and language the shop sells in.

A market's pages live under its prefix, its language and its market in lower case
(`/de-de/`, `/ja-jp/`, `/en-us/`); `/` sends a browser to the one its languages fit best.
The pages call the modules' services, as the store API's routes do, and work without
JavaScript: every change is a form post answered with a redirect or a page.
"""

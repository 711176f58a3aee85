"""The care team's console under /care/: accounts, pages, the human handoff and exports.

`bot.care.web.init_app(app)` wires it into the Flask app; `bot.care.handoff` is the
small piece the turn (bot.runner) calls.
"""

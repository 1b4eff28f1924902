"""``make demo``: gradbot, its job worker, the WeChat stand-in and the pay sandbox on loopback, with
the chat simulator and a demo staff account (docs/demo.md). Entry point: ``python -m bot.demo``."""

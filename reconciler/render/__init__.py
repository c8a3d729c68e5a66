"""Views for people and machines: text (rich on a TTY, plain otherwise), JSON and Markdown."""

"""The navigator's pages, one module each (listed in ``navigator.app.PAGES``)."""

"""One module per benchmarked library; each is imported only by ``driver.py`` in its own process."""

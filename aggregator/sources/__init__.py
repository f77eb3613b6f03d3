"""Sources: the content directory and external feeds, each yielding RawItem."""

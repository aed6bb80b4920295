"""The online side: feature vectors by key, for serving."""

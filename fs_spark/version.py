"""The version of fs_spark, recorded in every manifest."""

__version__ = "0.1.0"

"""Files <-> AnnData / arrays: spatial readers, references, gene matching, exports."""

"""Sleep: the night's data mixing (:mod:`.batches`) and the night itself (:mod:`.night`)."""

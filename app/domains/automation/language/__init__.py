"""The rule language's context (what conditions read about a lead) and its validation."""

"""Carrying out a step: the executors of rule actions, and messages through the contact policy."""

"""Booking against availability: free slots, and where a consultation sits on its provider's time
(no two overlap: the database refuses the second, and the loser is shown the nearest free slots)."""

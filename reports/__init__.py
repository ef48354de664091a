"""Reports: the numbers that run the centre, counted in SQL from what telephonist stores."""

module tally.local/images/pause

go 1.26.0

"""V2G decisions: battery degradation cost, paying programs, economics and real options."""

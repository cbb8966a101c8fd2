"""Operations: the OCPP central system, its persistence, the plan → profile translation and the
depot simulator (DESIGN §2 "operations")."""

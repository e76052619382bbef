"""Operations: the shop's own upkeep. Imports module services, never their insides."""

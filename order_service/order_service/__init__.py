"""The orders service: Carts, checkout, payment, orders and the order saga; the support dashboard."""

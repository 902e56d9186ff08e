"""muster.store"""

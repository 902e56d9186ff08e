"""muster.security"""

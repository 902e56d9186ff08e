"""muster.cli"""

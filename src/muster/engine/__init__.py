"""muster.engine"""

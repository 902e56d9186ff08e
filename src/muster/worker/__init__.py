"""muster.worker"""

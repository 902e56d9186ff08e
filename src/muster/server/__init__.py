"""muster.server"""

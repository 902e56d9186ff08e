"""muster.agent"""
